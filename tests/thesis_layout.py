"""An independent re-implementation of the key layout of the thesis' `NetworkCIFAR` (written for the
tests from the DARTS layout, sharing no code with core/: not core.ops, not core.network).

DARTS' evaluation network: `stem` = Sequential(conv3x3, BN); `cells` = ModuleList; each cell has
`preprocess0` (a factorized reduce `relu/conv_1/conv_2/bn` after a reduction cell, else
`op` = Sequential(ReLU, conv1x1, BN)), `preprocess1`, and `_ops` = ModuleList with one module per
genotype edge *in list order*; the intermediate node count comes from the edge count with the
edge_all formula (n nodes take 2 + 3 + ... + (n + 1) edges), nodes consume consecutive edges.
Ops: `op` = Sequential(...) for pooling + BN (SNAS), dilated and separable convs; a strided
skip is a factorized reduce; `none` and a stride-1 skip hold nothing. `auxiliary_head`
(`features` Sequential + `classifier`) after the second reduction, `global_pooling`, `classifier`.
"""

import torch
from torch import nn


def _bn(c):
    return nn.BatchNorm2d(c, affine=True)


class _Seq(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.op = nn.Sequential(*layers)

    def forward(self, x):
        return self.op(x)


class _FR(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, 2, 0, bias=False)
        self.bn = _bn(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], 1))


class _Nothing(nn.Module):
    def __init__(self, stride, zero):
        super().__init__()
        self.stride, self.zero = stride, zero

    def forward(self, x):
        if not self.zero:
            return x
        return x[:, :, ::self.stride, ::self.stride] * 0.0


def _op(name, c, stride):
    if name == "none":
        return _Nothing(stride, True)
    if name == "skip_connect":
        return _Nothing(1, False) if stride == 1 else _FR(c, c)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool = (nn.MaxPool2d(3, stride, 1) if name.startswith("max")
                else nn.AvgPool2d(3, stride, 1, count_include_pad=False))
        return _Seq(pool, _bn(c))
    k = int(name[-1])
    if name.startswith("dil"):
        return _Seq(nn.ReLU(), nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
                    nn.Conv2d(c, c, 1, bias=False), _bn(c))
    p = k // 2
    return _Seq(nn.ReLU(), nn.Conv2d(c, c, k, stride, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False), _bn(c),
                nn.ReLU(), nn.Conv2d(c, c, k, 1, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False), _bn(c))


class ThesisCell(nn.Module):
    def __init__(self, edges, concat, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = _FR(c_pp, c) if reduction_prev else _Seq(nn.ReLU(), nn.Conv2d(c_pp, c, 1, bias=False), _bn(c))
        self.preprocess1 = _Seq(nn.ReLU(), nn.Conv2d(c_p, c, 1, bias=False), _bn(c))
        self._ops = nn.ModuleList(_op(name, c, 2 if reduction and src < 2 else 1) for name, src in edges)
        self._inputs = [src for _, src in edges]
        n = 0
        while n * (n + 3) // 2 < len(edges):
            n += 1
        assert n * (n + 3) // 2 == len(edges), "not an edge_all genotype"
        self._nodes, self._concat = n, list(concat)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        j = 0
        for node in range(self._nodes):
            total = 0
            for _ in range(node + 2):
                total = total + self._ops[j](states[self._inputs[j]])
                j += 1
            states.append(total)
        return torch.cat([states[i] for i in self._concat], 1)


class ThesisNetworkCIFAR(nn.Module):
    """(C, classes, K-L-M, auxiliary, genotype with edge_all cells) -> (logits, logits_aux)."""

    def __init__(self, C, classes, K, L, M, auxiliary, genotype):
        super().__init__()
        c = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), _bn(c))
        self.second = K + L + 1
        c_pp, c_p, c = c, c, C
        self.cells = nn.ModuleList()
        red_prev = False
        for i in range(K + L + M + 2):
            red = i in (K, self.second)
            if red:
                c *= 2
            edges, concat = (genotype.reduce, genotype.reduce_concat) if red else (genotype.normal, genotype.normal_concat)
            self.cells.append(ThesisCell(edges, concat, c_pp, c_p, c, red, red_prev))
            red_prev = red
            c_pp, c_p = c_p, len(concat) * c
            if i == self.second:
                c_aux = c_p
        self._aux = auxiliary
        if auxiliary:
            head = nn.Module()
            head.features = nn.Sequential(nn.ReLU(), nn.AvgPool2d(5, 3, 0, count_include_pad=False),
                                          nn.Conv2d(c_aux, 128, 1, bias=False), _bn(128), nn.ReLU(),
                                          nn.Conv2d(128, 768, 2, bias=False), _bn(768), nn.ReLU())
            head.classifier = nn.Linear(768, classes)
            self.auxiliary_head = head
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x):
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.second and self._aux and self.training:
                h = self.auxiliary_head.features(s1)
                aux = self.auxiliary_head.classifier(h.flatten(1))
        return self.classifier(self.global_pooling(s1).flatten(1)), aux
