"""Windows over samplers: the meter, how one window's readings become a ``Measurement``, how long a window
must be, what else the machine did meanwhile (noise), the machine's identity, thread counts, and energy per
layer.

Not ``energybench.measure``: that name is the public context manager (``eb.measure(...)``), which a
sub-package of the same name would shadow.
"""
