//! grpc.health.v1 statuses of one service, kept in one place: the overall status (service name
//! `""`) and one per gRPC service always move together.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use tonic_health::{server::HealthReporter, ServingStatus};

/// The health of one service's gRPC services. Cheap to clone; clones share the statuses.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    /// Fully qualified gRPC service names (`bookstore.book.v1.BookService`, ...).
    services: &'static [&'static str],
    /// Whether the overall status is SERVING (for `/healthz`).
    serving: Arc<AtomicBool>,
}

impl Health {
    /// Health for `services`, all starting at `status`.
    pub async fn new(services: &'static [&'static str], status: ServingStatus) -> Self {
        let health = Health {
            reporter: HealthReporter::new(),
            services,
            serving: Arc::new(AtomicBool::new(false)),
        };
        health.set(status).await;
        health
    }

    /// Sets the overall status and every service's status.
    pub async fn set(&self, status: ServingStatus) {
        self.serving
            .store(status == ServingStatus::Serving, Ordering::SeqCst);
        self.reporter.set_service_status("", status).await;
        for name in self.services {
            self.reporter.set_service_status(*name, status).await;
        }
    }

    /// Whether the service is SERVING now.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    /// The gRPC service names this health covers.
    pub fn services(&self) -> &'static [&'static str] {
        self.services
    }

    /// The grpc.health.v1 service answering from these statuses.
    pub(crate) fn server(
        &self,
    ) -> tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService> {
        tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(self.reporter.clone()),
        )
    }
}
