"""cascadevae: CascadeVAE (Jeong & Song, ICML 2019) with a fast exact assignment solver."""
__version__ = "0.1.0"
