"""Group assignments: the organisers' side of the course.

    bundle.py       the bundle format (member names and kinds, the manifest's schema) and LabSpec, what the
                    tools need of a lab: passed in by the CLI (esc_course.lab.spec), so nothing here imports a lab
    submit.py       a group's bundle (zip): manifest with a SHA-256 per file, results, figures, notebook, weights
    verify.py       every check a bundle must pass before anything in it is extracted or trusted
    reevaluate.py   the optional lab protocol (build_model, evaluate_weights) to measure a bundle's weights
    leaderboard.py  rank a folder of bundles by the lab's headline metric; list the rejected ones with the reason
    draw.py         a fair, reproducible draw of who presents: nobody twice before everyone once

Nothing here imports torch at import time; the CLI commands ``submit``, ``verify``, ``leaderboard`` and ``draw``
call these modules.
"""
