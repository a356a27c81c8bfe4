DROP TABLE segment_history;
--bun:split
DROP TABLE segment_members;
--bun:split
DROP TABLE segments;
