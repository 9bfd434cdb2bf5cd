"""`python -m kaldilite` runs the command-line tool."""

from kaldilite.cli import main

main()
