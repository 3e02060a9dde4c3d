"""The DARTS-space CIFAR network for any K-L-M meta-architecture (thesis section 3.1).

Layout (quark0/darts `NetworkCIFAR`, SNAS evaluation code, the thesis' `meta_arch` variant):
stem conv3x3(3, 3C) + BN; K + L + M + 2 cells, each reading the two previous states; reduction
cells at 0-based indices K and K+L+1 double the channels and halve the resolution; the auxiliary
head (training only) reads the output of the second reduction cell; global average pooling and a
linear classifier. Path dropout (`drop_path_prob`, set by the trainer) hits every edge except
identities while training.

`drop_none=True` leaves out the `none` edges (x*0): inference outputs are bit-identical to the full
network and the state dict is the same (ops live in a ModuleDict keyed by the edge's position in
the genotype, and `none` holds no parameters), so checkpoints load either way.

This file is pushed to Jetson devices: Python 3.6 syntax, torch 1.10 APIs only.
"""

import torch
import torch.nn as nn

from core.genotypes import cell_nodes, get_genotype
from core.ops import FactorizedReduce, Identity, ReLUConvBN, build_op, drop_path

STEM_MULTIPLIER = 3


def reduction_indices(K, L, M):
    """0-based indices of the two reduction cells among the K+L+M+2 cells."""
    return (K, K + L + 1)


class Cell(nn.Module):
    """One normal or reduction cell built from a genotype."""

    def __init__(self, genotype, C_prev_prev, C_prev, C, reduction, reduction_prev, drop_none=False):
        super(Cell, self).__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)

        if reduction:
            edges, concat = genotype.reduce, genotype.reduce_concat
        else:
            edges, concat = genotype.normal, genotype.normal_concat
        self._concat = list(concat)
        self.multiplier = len(self._concat)
        self._nodes = []  # per node: list of (key, source, is_identity)
        self._ops = nn.ModuleDict()
        for node_edges in cell_nodes(edges, concat):
            node = []
            for index, name, source in node_edges:
                if drop_none and name == "none":
                    continue
                stride = 2 if reduction and source < 2 else 1
                op = build_op(name, C, stride)
                key = str(index)
                self._ops[key] = op
                node.append((key, source, isinstance(op, Identity)))
            self._nodes.append(node)
        self._C = C

    def forward(self, s0, s1, drop_prob=0.0):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        for node in self._nodes:
            if not node:
                states.append(self._zeros_like_node(s1))
                continue
            s = 0
            for key, source, is_identity in node:
                h = self._ops[key](states[source])
                if self.training and drop_prob > 0.0 and not is_identity:
                    h = drop_path(h, drop_prob)
                s = s + h
            states.append(s)
        return torch.cat([states[i] for i in self._concat], dim=1)

    def _zeros_like_node(self, s1):
        """A node whose every edge is `none` (dropped): zeros at the node's resolution."""
        n, c, h, w = s1.shape
        if self.reduction:
            h, w = (h + 1) // 2, (w + 1) // 2
        return s1.new_zeros((n, self._C, h, w))


class AuxiliaryHeadCIFAR(nn.Module):
    """The auxiliary classifier on the 8x8 output of the second reduction cell (training only)."""

    def __init__(self, C, num_classes):
        super(AuxiliaryHeadCIFAR, self).__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class Network(nn.Module):
    """K-L-M network with initial channel count C; `forward` returns `(logits, logits_aux)`.

    `logits_aux` is None unless the module is training and was built with `auxiliary=True`.
    `genotype` is a registry name (core.genotypes.GENOTYPES) or a `Genotype`.
    """

    def __init__(self, C, num_classes, K, L, M, genotype="SNAS_mild", auxiliary=True, drop_none=False):
        super(Network, self).__init__()
        for name, value in (("K", K), ("L", L), ("M", M), ("C", C), ("num_classes", num_classes)):
            if int(value) < 1:
                raise ValueError("{} must be >= 1, got {}".format(name, value))
        genotype = get_genotype(genotype)
        self._auxiliary = auxiliary
        self.drop_path_prob = 0.0
        self.drop_none = drop_none
        self.reductions = reduction_indices(K, L, M)
        self._aux_index = self.reductions[1]

        C_curr = STEM_MULTIPLIER * C
        self.stem = nn.Sequential(
            nn.Conv2d(3, C_curr, 3, padding=1, bias=False),
            nn.BatchNorm2d(C_curr),
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        C_to_auxiliary = None
        for i in range(K + L + M + 2):
            reduction = i in self.reductions
            if reduction:
                C_curr *= 2
            cell = Cell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev, drop_none)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self._aux_index:
                C_to_auxiliary = C_prev

        if auxiliary:
            self.auxiliary_head = AuxiliaryHeadCIFAR(C_to_auxiliary, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x):
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_index and self._auxiliary and self.training:
                logits_aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        logits = self.classifier(out.view(out.size(0), -1))
        return logits, logits_aux
