"""newsflow stage logic: plain functions over typed records, testable without Prefect."""
