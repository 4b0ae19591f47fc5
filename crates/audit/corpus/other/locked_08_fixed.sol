// SPDX-License-Identifier: MIT
pragma solidity ^0.8.13;

// Tips can be collected by the owner.
contract TipJar {
    address payable public immutable owner;

    event Tip(address indexed from, uint256 amount);

    constructor() {
        owner = payable(msg.sender);
    }

    receive() external payable {
        emit Tip(msg.sender, msg.value);
    }

    function collect() external {
        require(msg.sender == owner, "owner");
        (bool ok, ) = owner.call{value: address(this).balance}("");
        require(ok, "collect failed");
    }
}
