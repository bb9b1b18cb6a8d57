"""The weekly labs: one module ``weekNN_<name>.py`` a week (``Config``, ``QUICK``, ``HEADLINE``, ``run(cfg, out)``).

The registry and the runner live in the library (``esc_course.lab``), which finds the labs by file name; this
package imports nothing. ``python -m labs.weekNN_name [--quick] [--out=DIR] [--key=value ...]`` runs one lab
exactly as ``esc-course lab run NAME ...`` does.
"""
