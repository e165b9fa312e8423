//! TEMPORARY placeholder until the storage branch lands.
use std::sync::Arc;
pub trait Storage: Send + Sync {}
struct P;
impl Storage for P {}
pub fn placeholder(_c: &crate::config::Config) -> Arc<dyn Storage> {
    Arc::new(P)
}
#[derive(Debug)]
pub struct StorageError;
impl StorageError {
    pub fn is_temporary(&self) -> bool {
        true
    }
}
