"""Package names imported from their modules on first use (PEP 562 module ``__getattr__``).

Lets ``import kaldilite.<layer>.<module>`` load that module alone: the package's convenience names
(``from kaldilite.gmm import AmDiagGmm``) are imported when first touched, not when the package is.
"""

import importlib
import sys


def lazy_exports(package_name, exports):
    """``(__getattr__, __dir__, names)`` for a package whose ``exports`` maps module -> names.

    Assign the first two in the package's ``__init__`` (``__getattr__, __dir__, __all__ =
    lazy_exports(__name__, {...})``); each name is imported from ``package_name.module`` when it
    is first read and then kept in the package namespace.
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    package = sys.modules[package_name]

    def __getattr__(name):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package_name}.{module}"), name)
        setattr(package, name, value)
        return value

    def __dir__():
        return sorted(set(vars(package)) | set(module_of))

    return __getattr__, __dir__, sorted(module_of)
