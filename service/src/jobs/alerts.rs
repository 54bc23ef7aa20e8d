//! The alerts job: judges the users' balance and key-cap thresholds (raising an alert per
//! crossing, see [`crate::alerts`]), then sends the deliveries that are due, retrying the ones
//! that failed.

use super::RunCtx;

pub async fn run(ctx: &RunCtx) -> anyhow::Result<String> {
    let svc = &ctx.svc;
    let raised = crate::alerts::check_thresholds(svc).await?;
    ctx.holding()?;
    let d = crate::alerts::deliver_due(svc, || ctx.holding()).await?;
    Ok(format!(
        "raised {raised} alerts; sent {}, retrying {}, gave up {}",
        d.sent, d.retrying, d.failed
    ))
}
