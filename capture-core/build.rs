//! Generates the KFL parser from `src/kfl/grammar.lalrpop`.

fn main() {
    println!("cargo:rerun-if-changed=src/kfl/grammar.lalrpop");
    lalrpop::Configuration::new()
        .set_in_dir("src/kfl")
        .process()
        .expect("the KFL grammar must compile");
}
