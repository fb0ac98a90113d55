"""Times the PyTorch reference (otenim/GLCIC-PyTorch) on the same work as bench_train.py.

Run by bench_train.py in the reference's own venv (torch is not a project
dependency):  REF_PY experiments/reference_timer.py --reference_dir=DIR
--phase=1 --image_size=64 --batch_size=8 --warmup=2
bench_train.py puts DIR and this project on its PYTHONPATH. It imports the
reference's networks from DIR (none of its code is copied
here), runs the same losses and optimizers as our phases (Adam for both nets,
local patch half the image side as in the reference) on 2 threads, and then
times one step per "step" line bench_train.py sends (step_protocol.py), in
turns with ours.
"""

import argparse
import resource

from glcic_jax.perf import step_protocol


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reference_dir", required=True)
    p.add_argument("--phase", required=True)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    import torch
    import torch.nn.functional as F
    from models import CompletionNetwork, ContextDiscriminator

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    s, b, ls = a.image_size, a.batch_size, a.image_size // 2
    arc = "places2" if s >= 256 else "celeba"
    g = CompletionNetwork()
    d = ContextDiscriminator((3, ls, ls), (3, s, s), arc=arc)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    x = torch.rand(b, 3, s, s)
    m = torch.zeros(b, 1, s, s)
    m[:, :, s // 2 : s // 2 + s // 4, s // 4 : s // 2 + s // 4] = 1
    inp = torch.cat([x * (1 - m) + 0.5 * m, m], dim=1)
    y0 = s // 4
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def local(t):
        return t[:, :, y0 : y0 + ls, y0 : y0 + ls]

    def d_update(fake):
        fake = fake.detach()
        loss = 0.5 * (
            F.binary_cross_entropy(d((local(fake), fake)), zeros)
            + F.binary_cross_entropy(d((local(x), x)), ones)
        )
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()

    def step():
        if a.phase == "1":
            loss = F.mse_loss(g(inp) * m, x * m)
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
        elif a.phase == "2":
            with torch.no_grad():
                out = g(inp)
            d_update(x * (1 - m) + out * m)
        elif a.phase == "3":
            out = g(inp)
            fake = x * (1 - m) + out * m
            d_update(fake)
            loss_g = F.mse_loss(out * m, x * m) + 4e-4 * F.binary_cross_entropy(
                d((local(fake), fake)), ones
            )
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
        else:
            g.eval()
            with torch.no_grad():
                g(inp)

    def summary(times):
        return dict(
            phase=a.phase,
            image_size=s,
            batch_size=b,
            **step_protocol.step_summary(times, b),
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            torch=torch.__version__,
        )

    step_protocol.serve(step, a.warmup, summary)


if __name__ == "__main__":
    main()
