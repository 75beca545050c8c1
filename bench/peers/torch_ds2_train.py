# flake8: noqa
# A copy of the PyTorch peer benchmark (../shared/peers), run by
# bench/ds2_train_throughput.py with a separate torch install (unchanged below these
# four lines); not project code.
#!/usr/bin/env python3
"""Peer benchmark: DeepSpeech2 geometry (tensorflow/models research/deep_speech defaults) in plain
PyTorch on CPU; prints audio seconds trained per wall second.

Geometry: log linear spectrogram, 161 bins, 10 ms step ([B, 1, T, 161]);
conv 32x(41x11) stride (2,2) pad (20,5) + BN + relu6; conv 32x(21x11) stride (2,1) pad (10,5) + BN + relu6;
N GRU layers of H units (bidirectional: outputs concatenated), BN before every layer but the first;
BN + linear to 29 classes; CTC loss; Adam.
Usage: torch_ds2_train.py [H=800] [LAYERS=5] [{bi,uni}=bi] [BATCH=16] [SECONDS=10] [STEPS=4]
"""
import sys
import time

import torch
import torch.nn as nn

a = sys.argv[1:] + [None] * 6
H = int(a[0] or 800); N = int(a[1] or 5); bi = (a[2] or "bi") == "bi"
B = int(a[3] or 16); sec = float(a[4] or 10.0); steps = int(a[5] or 4)
T = int(sec * 100); L = int(sec * 14)
D = 2 if bi else 1


class DS2(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, (41, 11), (2, 2), (20, 5), bias=False); self.b1 = nn.BatchNorm2d(32)
        self.c2 = nn.Conv2d(32, 32, (21, 11), (2, 1), (10, 5), bias=False); self.b2 = nn.BatchNorm2d(32)
        f = 81 * 32
        self.rnns = nn.ModuleList(); self.bns = nn.ModuleList()
        for i in range(N):
            self.bns.append(nn.BatchNorm1d(f) if i else nn.Identity())
            self.rnns.append(nn.GRU(f, H, bidirectional=bi, batch_first=True))
            f = H * D
        self.bn_out = nn.BatchNorm1d(f); self.fc = nn.Linear(f, 29)

    def forward(self, x):  # [B, 1, T, 161]
        x = self.b1(torch.clamp(self.c1(x), 0, 6)); x = self.b2(torch.clamp(self.c2(x), 0, 6))
        b, c, t, f = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, t, f * c)
        for bn, rnn in zip(self.bns, self.rnns):
            if not isinstance(bn, nn.Identity):
                x = bn(x.transpose(1, 2)).transpose(1, 2)
            x, _ = rnn(x)
        x = self.bn_out(x.transpose(1, 2)).transpose(1, 2)
        return self.fc(x)  # [B, T/4, 29]


torch.manual_seed(0)
m = DS2(); opt = torch.optim.Adam(m.parameters(), lr=5e-4); ctc = nn.CTCLoss(blank=28, zero_infinity=True)
x = torch.randn(B, 1, T, 161)
y = torch.randint(0, 28, (B, L))
times = []
for s in range(steps + 1):
    t0 = time.perf_counter()
    logits = m(x)
    lp = logits.log_softmax(-1).transpose(0, 1)
    loss = ctc(lp, y, torch.full((B,), lp.shape[0], dtype=torch.long), torch.full((B,), L, dtype=torch.long))
    opt.zero_grad(); loss.backward(); opt.step()
    if s:
        times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
print(f"torch DS2 H={H} layers={N} {'bi' if bi else 'uni'} batch={B} {sec}s threads={torch.get_num_threads()}: "
      f"{B * sec / med:.2f} audio-s/s (median step {med:.3f} s)")
