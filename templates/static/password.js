// Ticks the password rules listed under a new-password field as they are met. Only the rules a
// browser can judge are ticked (common and recent passwords are the server's to know); the form
// works without this script, and the server checks every rule anyway.
(function () {
  "use strict";
  var input = document.getElementById("new_password");
  var list = document.getElementById("password-rules");
  if (!input || !list) { return; }
  var account = (list.getAttribute("data-account") || "").toLowerCase();

  function classes(value) {
    var seen = { lower: false, upper: false, digit: false, other: false };
    Array.from(value).forEach(function (c) {
      if (/\p{Ll}/u.test(c)) { seen.lower = true; }
      else if (/\p{Lu}/u.test(c)) { seen.upper = true; }
      else if (/\p{N}/u.test(c)) { seen.digit = true; }
      else { seen.other = true; }
    });
    return Object.keys(seen).filter(function (k) { return seen[k]; }).length;
  }

  var checks = {
    length: function (value, min) { return Array.from(value).length >= min; },
    classes: function (value, min) { return classes(value) >= min; },
    not_account: function (value) {
      return value.length > 0 && value.trim().toLowerCase() !== account;
    }
  };

  function update() {
    var value = input.value;
    Array.prototype.forEach.call(list.querySelectorAll("li[data-rule]"), function (item) {
      var check = checks[item.getAttribute("data-rule")];
      if (!check) { return; }
      var met = check(value, Number(item.getAttribute("data-value")));
      item.classList.toggle("met", met);
      item.classList.toggle("broken", value.length > 0 && !met);
    });
  }

  input.addEventListener("input", update);
})();
