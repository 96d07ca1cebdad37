"""cascadevae: CascadeVAE (Jeong & Song, ICML 2019), learning disentangled continuous and
discrete factors, with a fast exact solver for its per-batch discrete assignment.

The native kernels live in the extension module :mod:`cascadevae_ext`; this package holds
the Python layer (conventions, and later the models, training loop and metrics).
"""
__version__ = "0.1.0"
