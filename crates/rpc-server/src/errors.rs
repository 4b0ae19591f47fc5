//! JSON-RPC error objects the handlers answer with.

use hibana_rpc::api::NODE_ERROR;
use jsonrpsee::types::{ErrorObjectOwned, error::INVALID_PARAMS_CODE};

pub(crate) fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS_CODE, msg.into(), None::<()>)
}

pub(crate) fn node_error(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(NODE_ERROR, format!("node error: {e}"), None::<()>)
}
