-- The account graph's edges (CSV), for its connected components.
COPY (SELECT a, b FROM graph_edge) TO STDOUT WITH (FORMAT csv)
