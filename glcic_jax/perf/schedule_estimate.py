"""How long a preset's training schedule takes, from measured step times: pure arithmetic.

A schedule is GLCIC's three phases (the completion network alone for
`phase1_steps`, the discriminators alone for `phase2_steps`, then both to
`total_steps`); each phase's steps times its median step time, plus its
first compile, is the estimate. It leaves out data loading beyond what the
benchmark's step includes, checkpoint saves and evaluation.
"""

PHASE_FIELDS = ("1", "2", "3")


def phase_steps(config) -> dict[str, int]:
    """{"1": steps, "2": steps, "3": steps} of a training config (ConfigDict or dict)."""
    p1, p2, total = (int(config[k]) for k in ("phase1_steps", "phase2_steps", "total_steps"))
    first = min(p1, total)
    second = min(p2, total - first)
    return {"1": first, "2": second, "3": total - first - second}


def schedule_seconds(config, step_ms: dict, compile_s: dict | None = None) -> dict:
    """Estimated seconds of each phase and in all ("total"); None where a phase was not measured.

    Args:
      config: the preset's config (its phase steps).
      step_ms: median step milliseconds by phase ("1", "2", "3").
      compile_s: each phase's first-compile seconds (added once), if known.
    """
    compile_s = compile_s or {}
    out = {}
    for phase, steps in phase_steps(config).items():
        if steps == 0:
            out[phase] = 0.0
        elif phase in step_ms:
            out[phase] = steps * step_ms[phase] / 1000.0 + compile_s.get(phase, 0.0)
        else:
            out[phase] = None
    known = [v for v in out.values() if v is not None]
    out["total"] = sum(known) if len(known) == len(PHASE_FIELDS) else None
    return out


def hours(seconds: float | None) -> str:
    """A table cell: hours with one decimal, or "not measured"."""
    return "not measured" if seconds is None else f"{seconds / 3600:.1f} h"
