"""newsflow's Prefect flows and command line. Importing them tunes glibc's malloc first (arenas, mmap
threshold; see tasks.memory): before any of the run's threads allocate."""

from tasks.memory import tune_malloc

tune_malloc()
