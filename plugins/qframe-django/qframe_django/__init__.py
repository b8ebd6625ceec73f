"""qframe for Django: ORM broker and stores, admin, ``manage.py qcluster``, Django Q2 compatibility.

Add ``"qframe_django"`` to ``INSTALLED_APPS``, configure ``settings.QFRAME`` (or keep
Django Q2's ``settings.Q_CLUSTER``), migrate, and run ``manage.py qcluster``.
"""
