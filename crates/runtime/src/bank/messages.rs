//! Bank messages: `Transfer`.

use hibana_types::{Event, Transfer, records::MODULE_ACCOUNTS};

use super::state::{credit, debit, require_balance};
use crate::{ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, invalid};

impl MessageHandler for Transfer {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(TxError::Invalid("transfer amount must be positive".into()));
        }
        if MODULE_ACCOUNTS.contains(&self.to) {
            return Err(TxError::Invalid(format!(
                "{} holds tokens locked by the chain's rules; nobody may transfer to it",
                self.to
            )));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        require_balance(state, &ctx.sender, self.amount)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        if self.to == ctx.sender {
            return Err(invalid("cannot transfer to the sending account"));
        }
        debit(state, &ctx.sender, self.amount)?;
        credit(state, &self.to, self.amount)?;
        events.push(Event::new(
            "bank.transfer",
            [
                ("from", ctx.sender.to_string()),
                ("to", self.to.to_string()),
                ("amount", self.amount.0.to_string()),
            ],
        ));
        Ok(())
    }
}
