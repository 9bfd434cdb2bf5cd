"""kaldilite: Kaldi-style classical speech recognition for offline command words.

Layers, lowest first (imports go downward only):
io -> feat -> lang -> hmm -> graph -> gmm/transform -> ivector -> nnet -> decode -> online -> train
-> score -> cli. `errors` and `utils` sit below everything.
"""

__version__ = "0.1.0"
