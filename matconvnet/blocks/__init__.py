"""Computational blocks (manual, chapter 4): forward and backward (projected derivative)
modes of every MatConvNet operator, as plain functions on N x C x H x W arrays."""
from .bilinearsampler import vl_nnbilinearsampler
from .bnorm import vl_nnbnorm
from .concat import vl_nnconcat
from .conv import vl_nnconv
from .convt import vl_nnconvt
from .crop import vl_nncrop
from .dropout import vl_nndropout
from .loss import vl_nnloss, vl_nnsoftmaxloss
from .noffset import vl_nnnoffset
from .normalize import vl_nnnormalize
from .normalizelp import vl_nnnormalizelp
from .pdist import vl_nnpdist
from .pool import vl_nnpool
from .relu import vl_nnrelu
from .roipool import vl_nnroipool
from .sigmoid import vl_nnsigmoid
from .softmax import vl_nnsoftmax
from .spnorm import vl_nnspnorm

__all__ = ["vl_nnconv", "vl_nnconvt", "vl_nnpool", "vl_nnrelu", "vl_nnsigmoid",
           "vl_nnsoftmax", "vl_nnloss", "vl_nnsoftmaxloss", "vl_nnbnorm", "vl_nnnormalize",
           "vl_nnspnorm", "vl_nnnormalizelp", "vl_nnpdist", "vl_nnbilinearsampler",
           "vl_nnroipool", "vl_nndropout", "vl_nnconcat", "vl_nncrop", "vl_nnnoffset"]
