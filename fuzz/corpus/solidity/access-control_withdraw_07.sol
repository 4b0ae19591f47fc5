pragma solidity ^0.7.0;

// The sweep function forgot its access check.
contract DonationBox {
    address payable public owner;

    constructor() {
        owner = msg.sender;
    }

    receive() external payable {}

    function sweep(address payable to, uint256 amount) external {
        to.transfer(amount); // expect: access-control
    }
}
