"""Reports for the performance team, SLT and the public: the exceptions report, open data.

Selection (:mod:`.exceptions`, :mod:`.opendata`) is pure; :mod:`.gather` reads the store;
:mod:`.render` and :mod:`.chart` only lay out what was selected.
"""
