"""Knowledge distillation: a smaller student learns from the baseline (teacher).

Distilling costs energy up front, so the method measures its own training in a meter window and hands the
joules to the runner, which reports them with the break-even point (how many inferences the student must
serve before its per-item saving repays the distillation). Hiding that cost would flatter the method.

Spec knobs, in any order after the prefix: ``t<temperature>`` (soft only), ``w<width>``, ``d<depth>``
(fractions of the teacher's width and layer count) and ``s<steps>``, e.g. ``distill-soft-t2-w0.5-d0.5``.
"""

from __future__ import annotations

import re
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Model, Subject

_KNOB = re.compile(r"^(?P<key>[tdws])(?P<value>[0-9]*\.?[0-9]+)$")


class _Distillation(CompressionMethod):
    soft: bool = True

    def parse(self, suffix: str) -> dict[str, Any]:
        params: dict[str, Any] = {"width": 0.5, "depth": 0.5}
        if self.soft:
            params["temperature"] = 2.0
        for part in filter(None, suffix.split("-")):
            m = _KNOB.match(part)
            if not m or (m["key"] == "t" and not self.soft):
                knobs = "t<temperature>, w<width>, d<depth>, s<steps>" if self.soft else "w<width>, d<depth>, s<steps>"
                raise ConfigError(f"{self.name}: unknown knob {part!r}; use {knobs} (e.g. {self.example})")
            value = float(m["value"])
            key = {"t": "temperature", "w": "width", "d": "depth", "s": "steps"}[m["key"]]
            params[key] = int(value) if key == "steps" else value
        for key in ("width", "depth"):
            if params[key] > 1.0:
                raise ConfigError(
                    f"{self.name}: student larger than its teacher ({key} {params[key]:g} > 1); "
                    f"use a {key} fraction <= 1, e.g. {self.name}-w0.5-d0.5"
                )
            if params[key] <= 0.0:
                raise ConfigError(f"{self.name}: {key} must be > 0, got {params[key]:g}")
        if params.get("temperature", 1.0) <= 0:
            raise ConfigError(f"{self.name}: temperature must be > 0, got {params['temperature']:g}")
        return params

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        spec = subject.distillation()
        teacher = baseline.module
        n_teacher = sum(p.numel() for p in teacher.parameters())
        steps = int(params.get("steps") or spec.steps())
        student, result = self._distil(spec, teacher, params, ctx, steps, ctx.seed)
        n_student = sum(p.numel() for p in student.parameters())
        one_off: dict[str, Any] = {"what": "distillation training", "steps": steps}
        energy = None
        if result is not None:
            energy = result.energy_j
            one_off.update(energy_j=energy, duration_s=result.duration_s, source=result.source)

        def repeat(seed: list[int] = [ctx.seed]) -> Any:  # noqa: B006 - a counter of repeats, on purpose
            seed[0] += 1000  # another student from another start: a fresh sample of the same work
            return self._distil(spec, teacher, params, ctx, steps, seed[0])[1]

        return Model(
            student,
            params={**params, "steps": steps, "teacher_params": n_teacher, "student_params": n_student,
                    "loss": "KL(T) * T^2 on teacher soft labels" if self.soft else "CE on teacher argmax labels"},
            one_off_energy_j=energy,
            one_off=one_off,
            repeat_one_off=repeat if ctx.meter is not None else None,
        )

    def _distil(self, spec: Any, teacher: Any, params: dict[str, Any], ctx: Context, steps: int, seed: int
                ) -> tuple[Any, Any]:
        """Train one student from scratch inside a meter window: (the student, the window's measurement)."""
        import torch
        import torch.nn.functional as F

        student = spec.make_student(teacher, params["width"], params["depth"]).to(ctx.device)
        n_teacher = sum(p.numel() for p in teacher.parameters())
        n_student = sum(p.numel() for p in student.parameters())
        if n_student >= n_teacher:
            raise ConfigError(
                f"{self.name}: student ({n_student} params) is not smaller than its teacher ({n_teacher}); "
                "lower w<width> or d<depth>"
            )
        temperature = float(params.get("temperature", 1.0))
        batches = spec.batches(seed + 101)
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(student.parameters(), lr=spec.lr(), weight_decay=0.01)
        teacher.eval()
        student.train()
        window = f"distill:{self.name}:{id(student)}"
        if ctx.meter is not None:
            ctx.meter.begin(window)
        try:
            for _ in range(steps):
                batch = next(batches)
                with torch.no_grad():
                    t_logits = spec.logits(teacher, batch).float()
                s_logits = spec.logits(student, batch)
                if self.soft:
                    loss = F.kl_div(
                        F.log_softmax(s_logits / temperature, dim=-1),
                        F.log_softmax(t_logits / temperature, dim=-1),
                        reduction="batchmean",
                        log_target=True,
                    ) * temperature**2
                else:
                    loss = F.cross_entropy(s_logits, t_logits.argmax(dim=-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        finally:
            result = ctx.meter.end(window) if ctx.meter is not None else None
        student.eval()
        return student, result


class SoftDistillation(_Distillation):
    name = "distill-soft"
    description = "soft-label distillation (KL at temperature T) into a smaller student"
    example = "distill-soft-t2-w0.5-d0.5"
    soft = True


class HardDistillation(_Distillation):
    name = "distill-hard"
    description = "hard-label distillation (cross-entropy on the teacher's argmax) into a smaller student"
    example = "distill-hard-w0.5-d0.5"
    soft = False
