"""``rtcheck listen``: receive plans over DICOM (C-STORE) and check them on arrival.

Modules: :mod:`~rtcheck.net.storage` (safe paths, atomic writes),
:mod:`~rtcheck.net.catalog` (what is stored, when a plan's set is complete),
:mod:`~rtcheck.net.courses` (``--sum``: the plans checked together as one course),
:mod:`~rtcheck.net.arrivals` (settle time, the checking thread),
:mod:`~rtcheck.net.reports` (check and reports next to the data),
:mod:`~rtcheck.net.scp` (the pynetdicom Storage SCP), :mod:`~rtcheck.net.logs`
(log line formats), :mod:`~rtcheck.net.instances` (one object per SOP Instance UID),
:mod:`~rtcheck.net.gate` (connection limits), :mod:`~rtcheck.net.status`
(``rtcheck listen --status``).  pynetdicom is imported only when a listener starts.
"""
