"""``rtcheck listen``: receive plans over DICOM (C-STORE) and check them on arrival.

Modules: :mod:`~rtcheck.net.storage` (safe paths, atomic writes),
:mod:`~rtcheck.net.catalog` (what is stored, when a plan's set is complete),
:mod:`~rtcheck.net.arrivals` (settle time, the checking thread),
:mod:`~rtcheck.net.reports` (check and reports next to the data),
:mod:`~rtcheck.net.scp` (the pynetdicom Storage SCP), :mod:`~rtcheck.net.logs`
(log line formats).  pynetdicom is imported only when a listener starts.
"""
