//! Benchmark driver for `hack/bench-hostops`: creates stateroot `<stateroot>` on the simulated
//! node at `<root>` and deploys `<refspec>` into it through lca-hostops (os-init + deploy, the
//! stateroot-setup path), then prints the new deployment.
//!
//! Usage: bench_deploy <root> <stateroot> <refspec> [karg-append…]

use lca_hostops::LocalExecutor;
use lca_hostops::ostree::{self, DeployOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(stateroot), Some(refspec)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: bench_deploy <root> <stateroot> <refspec> [karg-append...]".into());
    };
    let exec = LocalExecutor::new(root);
    ostree::os_init(&exec, &stateroot).await?;
    let opts = DeployOptions {
        stateroot,
        refspec,
        karg_append: args.collect(),
        karg: Vec::new(),
        not_as_default: true,
    };
    let d = ostree::deploy(&exec, &opts).await?;
    println!("deployed {} at index {}", d.id(), d.index);
    Ok(())
}
