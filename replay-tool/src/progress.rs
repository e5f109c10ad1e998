//! Progress bars for long work (indicatif), drawn on stderr and only when stderr is a
//! terminal, so scripts and tests see clean output. [`Progress::hidden`] draws nothing at all
//! (the benchmark's in-process rebuild).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A set of progress bars shown together.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

const TEMPLATE: &str = "{prefix:>20} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {per_sec} eta {eta}";

impl Progress {
    /// Bars on stderr (hidden when stderr is not a terminal).
    pub fn stderr() -> Self {
        Progress { multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())) }
    }

    /// No bars.
    pub fn hidden() -> Self {
        Progress { multi: None }
    }

    /// A new bar of `len` steps labelled `label`.
    pub fn bar(&self, label: &str, len: u64) -> ProgressBar {
        let Some(multi) = &self.multi else { return ProgressBar::hidden() };
        let bar = multi.add(ProgressBar::new(len));
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        bar
    }
}
