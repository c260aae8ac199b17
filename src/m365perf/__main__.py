"""python -m m365perf"""

from m365perf.cli import main

main()
