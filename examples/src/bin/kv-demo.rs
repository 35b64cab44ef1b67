//! Mixed-version calls: clients of v1, v2 and v3 talk to key-value nodes of
//! v1, v2 and v3 over loopback TCP, and each call shows how the node served it.

use std::fmt::Debug;

use upshift::{CallError, Connection, Server};
use upshift_examples::kv::{self, interface::v1, interface::v2, interface::v3};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    upshift::logs::init();
    println!(
        "upshift demo: three key-value nodes, one per version, each with past and future SOs\n"
    );
    let mut nodes = Vec::new();
    for version in 1..=3 {
        let server = Server::new(kv::service(version, true));
        let listener = server.listen("127.0.0.1:0").await?;
        println!("node v{version} listening on {}", listener.local_addr());
        nodes.push((version, server, listener));
    }

    for (node, server, listener) in &nodes {
        println!("\n== node v{node} ==");
        let conn = Connection::connect(listener.local_addr()).await?;
        let service = server
            .service(kv::interface::SERVICE)
            .ok_or("service missing")?;
        let route = |call: u32| {
            service
                .route(call)
                .map_or_else(|| "no route".to_string(), |r| r.to_string())
        };

        let c1 = v1::Client::new(conn.clone());
        let via = route(1);
        show(
            1,
            *node,
            &via,
            "put(\"color\", \"blue\")",
            c1.put("color".into(), "blue".into()).await,
        );
        show(
            1,
            *node,
            &via,
            "get(\"color\")",
            c1.get("color".into()).await,
        );

        let c2 = v2::Client::new(conn.clone());
        let via = route(2);
        show(
            2,
            *node,
            &via,
            "put(\"session\", \"abc\", ttl 60s)",
            c2.put("session".into(), "abc".into(), Some(60)).await,
        );
        show(
            2,
            *node,
            &via,
            "put(\"shape\", \"square\", no ttl)",
            c2.put("shape".into(), "square".into(), None).await,
        );
        show(
            2,
            *node,
            &via,
            "delete(\"shape\")",
            c2.delete("shape".into()).await,
        );

        let c3 = v3::Client::new(conn.clone());
        let via = route(3);
        show(
            3,
            *node,
            &via,
            "get(\"color\")",
            c3.get("color".into()).await,
        );
        show(3, *node, &via, "keys(\"\")", c3.keys(String::new()).await);

        let served: Vec<String> = service
            .versions()
            .map(|v| format!("v{v}: {}", service.served(v)))
            .collect();
        println!("   calls served by node v{node}: {}", served.join(", "));
    }
    println!(
        "\nEvery call either went through the object or an SO chain, or got the SO's typed refusal."
    );
    Ok(())
}

fn show<T: Debug>(client: u32, node: u32, via: &str, call: &str, result: Result<T, CallError>) {
    let outcome = match result {
        Ok(value) => format!("ok {value:?}"),
        Err(CallError::Disallowed(d)) => format!("disallowed: {d}"),
        Err(e) => format!("error: {e}"),
    };
    println!("   v{client} client -> v{node} node via {via:<22} {call:<34} => {outcome}");
}
