# Operator image: the manager and the host-side lca-cli in one minimal image.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libostree-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Without the `test-hooks` feature: no test peer, no crash hooks; checked, not assumed.
RUN cargo build --release -p lca-operator -p lca-cli --bins \
 && for b in lca-operator lca-cli; do ! target/release/$b --version | grep -q test-hooks; done

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libostree-1-1 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lca-operator /usr/local/bin/lca-operator
COPY --from=build /src/target/release/lca-cli /usr/local/bin/lca-cli
# `oc adm must-gather --image=<this image>` runs /usr/bin/gather (it needs oc or kubectl,
# which this image does not carry yet).
COPY must-gather/gather must-gather/gather_common must-gather/gather_lca must-gather/gather_oadp /usr/bin/
USER 0
ENTRYPOINT ["/usr/local/bin/lca-operator"]
