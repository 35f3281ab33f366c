"""acigen gc, clean and verify: a build directory kept tidy and checked."""
