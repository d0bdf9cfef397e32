//! Resource templates and prompts: the project-facts template, the briefing prompt, and how
//! templates match URIs.

use super::*;

#[test]
fn project_facts_template_and_briefing_prompt() {
    let store = Arc::new(InMemoryStore::new());
    let s = cached_server(&store, &Arc::new(Metrics::new()));
    tool_call(
        &s,
        "cortex_store",
        json!({"facts": [
            {"project": "my proj", "content": "Deploys run on Fridays", "tags": ["ops"]},
            {"project": "other", "content": "Not this one"}]}),
    );
    let t = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/templates/list"}),
    );
    let templates = t["result"]["resourceTemplates"].as_array().unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t["uriTemplate"] == "cortex://projects/{project}/facts"),
        "{t}"
    );
    // The checkpoint resource is still listed.
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    );
    assert_eq!(
        r["result"]["resources"][0]["uri"],
        "cortex://ledger/checkpoint"
    );

    let read = |uri: &str| {
        call(
            &s,
            json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                   "params": {"uri": uri}}),
        )
    };
    let got = read("cortex://projects/my%20proj/facts");
    let content = &got["result"]["contents"][0];
    assert_eq!(content["uri"], "cortex://projects/my%20proj/facts", "{got}");
    assert_eq!(content["mimeType"], "application/json");
    let body: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["project"], "my proj");
    assert_eq!(body["count"], 1);
    assert_eq!(body["facts"][0]["content"], "Deploys run on Fridays");
    let empty = read("cortex://projects/nobody/facts");
    assert!(
        empty["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"count\":0")
    );
    // Not matching the template: resource not found (legacy code).
    for bad in [
        "cortex://projects//facts",
        "cortex://projects/a/b/facts",
        "cortex://x",
    ] {
        assert_eq!(err_code(&read(bad)), codes::RESOURCE_NOT_FOUND, "{bad}");
    }

    let list = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/list"}),
    );
    let p = list["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cortex_project_briefing")
        .expect("briefing listed")
        .clone();
    assert_eq!(p["arguments"][0]["name"], "project");
    assert_eq!(p["arguments"][0]["required"], true);
    let get = |args: Value| {
        call(
            &s,
            json!({"jsonrpc": "2.0", "id": 5, "method": "prompts/get",
                   "params": {"name": "cortex_project_briefing", "arguments": args}}),
        )
    };
    let g = get(json!({"project": "my proj"}));
    let text = g["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("Deploys run on Fridays"), "{text}");
    assert!(text.contains("[ops]"), "{text}");
    assert!(!text.contains("Not this one"), "{text}");
    assert_eq!(g["result"]["messages"][0]["role"], "user");
    let none = get(json!({"project": "empty"}));
    assert!(
        none["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("no current facts")
    );
    assert_eq!(err_code(&get(json!({}))), codes::INVALID_PARAMS);
    assert_eq!(
        err_code(&get(json!({"project": " "}))),
        codes::INVALID_PARAMS
    );
}

#[test]
fn resource_templates_match_one_segment_per_variable() {
    let t = ResourceTemplate {
        uri_template: "cortex://projects/{project}/facts".into(),
        name: String::new(),
        title: String::new(),
        description: String::new(),
        mime_type: String::new(),
        read: Arc::new(|_| Ok(String::new())),
    };
    assert_eq!(
        t.matches("cortex://projects/a%2Fb/facts").unwrap()["project"],
        "a/b"
    );
    assert!(t.matches("cortex://projects/a/factsx").is_none());
    assert!(t.matches("cortex://projects/%zz/facts").is_none());
    let tail = ResourceTemplate {
        uri_template: "x://{a}".into(),
        ..t
    };
    assert_eq!(tail.matches("x://v").unwrap()["a"], "v");
    assert!(tail.matches("x://").is_none());
}
