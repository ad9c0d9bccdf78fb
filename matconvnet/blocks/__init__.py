"""Computational blocks (manual, chapter 4): forward and backward (projected derivative)
modes of every MatConvNet operator, as plain functions on N x C x H x W arrays."""
from .conv import vl_nnconv
from .convt import vl_nnconvt
from .loss import vl_nnloss, vl_nnsoftmaxloss
from .pool import vl_nnpool
from .relu import vl_nnrelu
from .sigmoid import vl_nnsigmoid
from .softmax import vl_nnsoftmax

__all__ = ["vl_nnconv", "vl_nnconvt", "vl_nnpool", "vl_nnrelu", "vl_nnsigmoid",
           "vl_nnsoftmax", "vl_nnloss", "vl_nnsoftmaxloss"]
