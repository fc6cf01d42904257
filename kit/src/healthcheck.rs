//! The client side of health checking: what the `healthcheck` subcommands of both binaries run
//! (docker compose and Kubernetes probes call them).

use std::time::Duration;

use tonic_health::pb::health_client::HealthClient;

use crate::config::ClientTls;

/// Asks the grpc.health.v1 service at `addr` (`host:port` or a URL) for the overall status.
/// Used by the `healthcheck` subcommands (docker-compose healthchecks): `Ok(true)` if SERVING.
pub async fn healthcheck(addr: &str, tls: &ClientTls) -> anyhow::Result<bool> {
    let channel = crate::channel::endpoint(addr, tls)?
        .timeout(Duration::from_secs(3))
        .connect()
        .await?;
    let response = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status
        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
}

/// The `healthcheck` subcommand of both binaries: exit 0 when `addr` reports SERVING, else 1
/// with the reason on stderr.
pub async fn healthcheck_exit(addr: &str, tls: &ClientTls) -> std::process::ExitCode {
    match healthcheck(addr, tls).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{addr}: NOT_SERVING");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{addr}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
