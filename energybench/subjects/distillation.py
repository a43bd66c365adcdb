"""Knowledge distillation: a smaller student learns from the baseline (teacher).

Distilling costs energy up front, so the method measures its own training in a meter window
(``subjects.one_off.measure_one_off``) and hands the joules to the runner, which reports them with the
break-even point (how many inferences the student must serve before its per-item saving repays the
distillation). Hiding that cost would flatter the method.

Classifiers and language models distil logits (KL at a temperature, or cross-entropy on the teacher's
argmax); an embedding model (``Distillable.outputs == "embeddings"``, MiniLM) distils its embeddings with
``Distillable.embedding_loss``, soft only.

Spec knobs, in any order after the prefix: ``t<temperature>`` (soft only), ``w<width>``, ``d<depth>``
(fractions of the teacher's width and layer count) and ``s<steps>``, e.g. ``distill-soft-t2-w0.5-d0.5``.
"""

from __future__ import annotations

import re
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Distillable, Model, NotApplicable, Subject
from energybench.subjects.one_off import measure_one_off

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
        if spec.outputs == "embeddings" and not self.soft:
            raise NotApplicable(f"{self.name}: {subject.name} distils embeddings, which have no class labels to take "
                                "the argmax of; use distill-soft")
        teacher = baseline.module
        n_teacher = sum(p.numel() for p in teacher.parameters())
        n_student = sum(p.numel() for p in spec.make_student(teacher, params["width"], params["depth"]).parameters())
        if n_student >= n_teacher:
            raise ConfigError(
                f"{self.name}: student ({n_student} params) is not smaller than its teacher ({n_teacher}); "
                "lower w<width> or d<depth>"
            )
        steps = int(params.get("steps") or spec.steps())

        def distil_once() -> Any:
            """A fresh student trained from the teacher: self-contained, so it can be measured again."""
            return _train_student(spec, teacher, params, steps, self.soft, ctx)

        student, one_off = measure_one_off(ctx, "distillation training", distil_once, steps=steps)
        student.eval()
        if spec.outputs == "embeddings":
            loss = "1 - cosine + MSE on the teacher's embeddings"
        else:
            loss = "KL(T) * T^2 on teacher soft labels" if self.soft else "CE on teacher argmax labels"
        return Model(
            student,
            params={**params, "steps": steps, "teacher_params": n_teacher, "student_params": n_student, "loss": loss},
            one_off_energy_j=one_off.get("energy_j"),
            one_off=one_off,
            one_off_work=distil_once,
        )


def _train_student(spec: Distillable, teacher: Any, params: dict[str, Any], steps: int, soft: bool,
                   ctx: Context) -> Any:
    """Build the student and train it on the teacher's outputs for ``steps`` AdamW steps."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(ctx.seed)
    student = spec.make_student(teacher, params["width"], params["depth"]).to(ctx.device)
    temperature = float(params.get("temperature", 1.0))
    batches = spec.batches(ctx.seed + 101)
    opt = torch.optim.AdamW(student.parameters(), lr=spec.lr(), weight_decay=0.01)
    teacher.eval()
    student.train()
    for _ in range(steps):
        batch = next(batches)
        with torch.no_grad():
            t_out = spec.logits(teacher, batch).float()
        s_out = spec.logits(student, batch)
        if spec.outputs == "embeddings":
            loss = spec.embedding_loss(s_out.float(), t_out)
        elif soft:
            loss = F.kl_div(
                F.log_softmax(s_out / temperature, dim=-1),
                F.log_softmax(t_out / temperature, dim=-1),
                reduction="batchmean",
                log_target=True,
            ) * temperature**2
        else:
            loss = F.cross_entropy(s_out, t_out.argmax(dim=-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return student


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
