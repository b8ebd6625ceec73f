-- ARGV: P, task id   Returns 1 when the result existed.
return drop(ARGV[2])
