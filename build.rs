//! Compiles resources/ (CSS, UI files, icons) into the GResource bundle the binary embeds.

fn main() {
    glib_build_tools::compile_resources(
        &["resources"],
        "resources/corral.gresource.xml",
        "corral.gresource",
    );
}
