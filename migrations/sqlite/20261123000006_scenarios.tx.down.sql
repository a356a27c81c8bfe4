DROP TABLE scenario_cursors;
--bun:split
DROP TABLE step_runs;
--bun:split
DROP TABLE enrollments;
--bun:split
DROP TABLE scenario_versions;
--bun:split
DROP TABLE scenarios;
