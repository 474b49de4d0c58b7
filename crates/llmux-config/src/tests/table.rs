//! `Config::combination_table()`.

use super::yaml_ok;

#[test]
fn table_lists_every_combination_in_config_order() {
    let config = yaml_ok(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
  - {platform: gemini, value: AIza1234567890, name: google-main}
  - {platform: openai, value: sk-0987654321}
models:
  - {vendor: gemini, model: gemini-2.5-flash, name: fast}
  - {vendor: openai, model: gpt-4o-mini, name: fast}
  - {vendor: openai, model: text-embedding-3-small, kind: embedding}
",
    );
    let expected = "\
VENDOR  CREDENTIAL   MODEL                   NAME  KIND
openai  openai-1     gpt-4o-mini             fast  chat
openai  openai-1     text-embedding-3-small  -     embedding
gemini  google-main  gemini-2.5-flash        fast  chat
openai  openai-2     gpt-4o-mini             fast  chat
openai  openai-2     text-embedding-3-small  -     embedding
5 combinations
";
    assert_eq!(config.combination_table(), expected);
}

#[test]
fn table_for_a_single_combination() {
    let config = yaml_ok(super::MINIMAL);
    assert_eq!(
        config.combination_table(),
        "\
VENDOR  CREDENTIAL  MODEL        NAME  KIND
openai  openai-1    gpt-4o-mini  -     chat
1 combination
"
    );
}
