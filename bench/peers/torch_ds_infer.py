# flake8: noqa
# Written for this project (not a copy of ../shared/peers): the client-side peer of
# bench/side_by_side.py, run with a separate torch install; not project code.
"""DeepSpeech (DS1) geometry in plain PyTorch, inference real-time factor on CPU.

The model of ../shared/peers/torch_ds_train.py (494 inputs = 26 MFCC x 19 frames, 3
clipped-ReLU dense layers, one LSTM, dense, 29 outputs) in eval mode, batch 1, random
weights, under torch.inference_mode, as the client runs an utterance: prints compute
seconds per audio second (median of REPEATS runs after one warm-up). Features are not
computed (ours computes MFCCs inside the timed call, so this favours the peer).
Usage: torch_ds_infer.py N_HIDDEN {uni,bi} [SECONDS=10] [THREADS=1] [REPEATS=3]
"""
import statistics, sys, time
import torch, torch.nn as nn

nh = int(sys.argv[1]); bi = sys.argv[2] == "bi"
sec = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 3
torch.set_num_threads(threads)
T = int(sec * 50)


class DS(nn.Module):
    def __init__(self):
        super().__init__()
        self.h1, self.h2, self.h3 = nn.Linear(494, nh), nn.Linear(nh, nh), nn.Linear(nh, nh)
        self.rnn = nn.LSTM(nh, nh, bidirectional=bi)
        self.h5 = nn.Linear(nh * (2 if bi else 1), nh)
        self.out = nn.Linear(nh, 29)

    def forward(self, x):  # x [T, 1, 494]
        clip = lambda v: torch.clamp(torch.relu(v), max=20.0)
        x = clip(self.h3(clip(self.h2(clip(self.h1(x))))))
        x, _ = self.rnn(x)
        return self.out(clip(self.h5(x))).softmax(-1)


torch.manual_seed(0)
m = DS().eval()
x = torch.randn(T, 1, 494)
with torch.inference_mode():
    m(x)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); m(x); times.append(time.perf_counter() - t0)
med = statistics.median(times)
print(f"torch {torch.__version__} infer nh={nh} {'bi' if bi else 'uni'} threads={threads} "
      f"{sec:g} s: rtf {med / sec:.4f}")
