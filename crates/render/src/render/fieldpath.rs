//! A path into a JSON object while walking it (`spec.template.spec.containers[0].env`),
//! kept as steps and turned into text only when an error needs it: the checks of every
//! rendered object walk everything and must not build a string per node.

/// One step from the object's root: a field or a list index.
pub(super) enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// The dotted path of `steps`.
pub(super) fn path_of(steps: &[Step<'_>]) -> String {
    let mut p = String::new();
    for s in steps {
        match s {
            Step::Field(f) => {
                if !p.is_empty() {
                    p.push('.');
                }
                p.push_str(f);
            }
            Step::Index(i) => p.push_str(&format!("[{i}]")),
        }
    }
    p
}
