"""The DARTS-space operations as used by SNAS' evaluation code (and so by the thesis).

Differences from quark0/darts that matter for parameter counts: SNAS follows every pooling op
with an affine BatchNorm (`PoolBN`). Module and attribute names follow the SNAS/DARTS code
(`op`, `conv_1`, `conv_2`, `bn`) so their state dicts line up.

This file is pushed to Jetson devices: Python 3.6 syntax, torch 1.10 APIs only.
"""

import torch
import torch.nn as nn


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN: the cell input preprocessing."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super(ReLUConvBN, self).__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super(DilConv, self).__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU -> depthwise -> pointwise -> BN); only the first one strides."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super(SepConv, self).__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class PoolBN(nn.Module):
    """3x3 max or average pooling followed by BN (SNAS' pooling ops)."""

    def __init__(self, kind, C, stride, affine=True):
        super(PoolBN, self).__init__()
        if kind == "max":
            pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        self.op = nn.Sequential(pool, nn.BatchNorm2d(C, affine=affine))

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    """skip_connect at stride 1; never path-dropped."""

    def forward(self, x):
        return x


class Zero(nn.Module):
    """The `none` op: x * 0 at the edge's stride. Costs time, adds nothing (see drop_none)."""

    def __init__(self, stride):
        super(Zero, self).__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convs, concatenated, then BN."""

    def __init__(self, C_in, C_out, affine=True):
        super(FactorizedReduce, self).__init__()
        if C_out % 2:
            raise ValueError("FactorizedReduce needs an even channel count, got {}".format(C_out))
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


def _skip(C, stride, affine):
    if stride == 1:
        return Identity()
    return FactorizedReduce(C, C, affine=affine)


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine: PoolBN("avg", C, stride, affine=affine),
    "max_pool_3x3": lambda C, stride, affine: PoolBN("max", C, stride, affine=affine),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}


def build_op(name, C, stride, affine=True):
    """One edge operation by name (see core.genotypes.PRIMITIVES)."""
    if name not in OPS:
        raise ValueError("unknown operation {!r} (known: {})".format(name, ", ".join(sorted(OPS))))
    return OPS[name](C, stride, affine)


def drop_path(x, drop_prob):
    """Zero whole samples with probability `drop_prob`, rescale the rest (DARTS' path dropout)."""
    if drop_prob <= 0.0:
        return x
    keep_prob = 1.0 - drop_prob
    mask = x.new_empty((x.size(0), 1, 1, 1)).bernoulli_(keep_prob)
    return x / keep_prob * mask
