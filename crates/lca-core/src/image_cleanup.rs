//! Image cleanup selection (spec §5.3): which container images to remove when the container
//! storage disk is above its threshold. Pure; the loop that executes it is in lca-hostops.
