"""Windows over samplers: the meter, what a window measured, the load around it, machine and threads.

The meter opens and closes windows; ``window`` turns one window's readings into a ``Measurement``; ``noise``
records what else the machine did meanwhile; ``machine`` and ``threads`` what a run must record to be compared;
``layers`` splits a window's energy by the modules of a torch model.

Not ``energybench.measure``: that name is the public context manager (``eb.measure(...)``), which a
sub-package of the same name would shadow.
"""
