"""Evaluation metrics: plain functions over a dataset (or arrays) and a representation
function, each returning a dict with prefixed keys. No metric reaches into a model."""
from .accuracy import unsupervised_accuracy
from .disentanglement import disentanglement_score
from .kmeans import kmeans_accuracy
from .mutual_information import discrete_mutual_information, mutual_information
from .total_correlation import total_correlation

__all__ = ["disentanglement_score", "unsupervised_accuracy", "total_correlation",
           "mutual_information", "discrete_mutual_information", "kmeans_accuracy"]
