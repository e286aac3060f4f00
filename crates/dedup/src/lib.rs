//! Placeholder: this component is being built; see the issues.
