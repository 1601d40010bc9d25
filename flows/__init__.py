"""newsflow's Prefect flows and command line. Importing them caps glibc's malloc arenas first (see
tasks.memory): before any of the run's threads allocate."""

from tasks.memory import limit_malloc_arenas

limit_malloc_arenas()
