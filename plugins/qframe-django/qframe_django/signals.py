"""Django signals with Django Q2's names, sent from the core's hooks (sender ``"django_q"``).

=====================  ==========================  ===================================
signal                 sent from hook              keyword arguments
=====================  ==========================  ===================================
``pre_enqueue``        ``qframe_pre_enqueue``      ``task`` (a dict, Django Q2 style)
``pre_execute``        ``qframe_pre_execute``      ``func`` (the callable), ``task``
``post_execute``       ``qframe_post_execute``     ``task`` (with ``result``, ``success``)
``post_spawn``         ``qframe_process_spawned``  ``proc_name``
=====================  ==========================  ===================================

``post_execute`` is sent in the worker right after the run (before the monitor saves the
result), which is Django Q2's ``post_execute_in_worker``; see docs/django.md, Decisions.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sender of every signal, as in Django Q2.
SENDER = "django_q"

pre_enqueue = Signal()
pre_execute = Signal()
post_execute = Signal()
post_spawn = Signal()
